require ["imap4flags", "variables", "fileinto", "relational", "comparator-i;ascii-numeric"];
addflag "\\Seen";
addflag "myvar" ["a", "b c"];
if hasflag :is "\\seen" { fileinto "seen"; }
if hasflag :is "myvar" "c" { fileinto "var-c"; }
if hasflag :contains "myvar" "b" { fileinto "var-contains-b"; }
if hasflag :count "eq" :comparator "i;ascii-numeric" "myvar" "3" { fileinto "var-3"; }
if hasflag :matches "\\S*" { fileinto "matches-seen"; }
removeflag "\\Seen";
if not hasflag "\\Seen" { fileinto "unseen"; }
