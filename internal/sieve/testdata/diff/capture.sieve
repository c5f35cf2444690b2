require ["variables", "fileinto", "imap4flags"];
# What a script sees of the header: each capture becomes a flag-free
# mailbox name, so that both interpreters print what they decoded.
if header :matches "subject" "*" { fileinto "subject/${1}"; }
if address :all :matches "from" "*" { fileinto "from/${1}"; }
if address :domain :matches "to" "*" { fileinto "to-domain/${1}"; }
if address :localpart :matches ["to", "cc"] "*" { fileinto "rcpt-local/${1}"; }
if header :matches "content-type" "*/*;*" { fileinto "type/${1}/${2}"; }
