require ["fileinto", "subaddress", "envelope"];
if address :localpart :is "from" "alice" { fileinto "local-alice"; }
if address :domain :is "from" "example.org" { fileinto "domain-org"; }
if address :all :is "to" "bob+shopping@example.net" { fileinto "all-bob"; }
if address :user :is "to" "bob" { fileinto "user-bob"; }
if address :detail :is "to" "shopping" { fileinto "detail-shopping"; }
if address :detail :matches "to" "*" { fileinto "has-detail"; }
if address :is "cc" "eve@example.com" { fileinto "cc-eve"; }
if address :is "from" "francois.dupont@example.fr" { fileinto "quoted-local"; }
if address :contains "to" "undisclosed" { fileinto "group-name"; }
if address :is :domain "resent-from" "example.fr" { fileinto "resent"; }
if address :is "to" "bob@example.net" { fileinto "bob-casemap"; }
if address :comparator "i;octet" :is "to" "bob@example.net" { fileinto "bob-octet"; }
