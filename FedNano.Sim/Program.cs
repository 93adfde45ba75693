System.Console.WriteLine("fednano");
