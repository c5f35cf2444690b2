require ["fileinto", "copy", "mailbox"];
fileinto :copy "Copies";
if header :contains "subject" "digest" { fileinto :create "Lists/Digests"; }
if header :contains "from" "francois" { fileinto :copy :create "People/François"; }
