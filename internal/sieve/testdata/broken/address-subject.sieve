require "fileinto";

if address :is "Subject" "x" { fileinto "A"; }
