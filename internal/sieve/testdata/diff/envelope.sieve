require ["envelope", "fileinto", "subaddress"];
if envelope :is "from" "" { fileinto "null-sender"; }
if envelope :domain :is "from" "lists.example.com" { fileinto "env-lists"; }
if envelope :detail :is "to" "shopping" { fileinto "env-shopping"; }
if envelope :user :is "to" "bob" { fileinto "env-bob"; }
if envelope :all :contains "to" "+" { fileinto "env-plus"; }
if envelope :localpart :is "from" "helpdesk" { fileinto "env-helpdesk"; }
