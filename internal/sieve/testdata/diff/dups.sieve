require ["fileinto", "imap4flags", "copy"];
fileinto :flags "one" "Box";
fileinto :copy :flags "two" "Box";
fileinto "INBOX";
keep :flags "three";
fileinto "inbox";
fileinto "Other";
fileinto "other";
