require ["mailbox", "fileinto"];
if mailboxexists "INBOX" { fileinto "inbox-exists"; }
if mailboxexists ["INBOX", "Nowhere"] { fileinto "wrong"; }
if not mailboxexists "Nowhere" { fileinto :create "Nowhere"; }
