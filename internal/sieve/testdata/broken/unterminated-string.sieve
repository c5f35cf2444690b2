require "fileinto";
fileinto "abc;
keep;
