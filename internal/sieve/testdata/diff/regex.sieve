require ["regex", "variables", "fileinto"];
if header :regex "subject" "^\\[([a-z]+)\\] (.*)$" { fileinto "tag-${1}"; }
if header :regex "x-spam-level" "^\\*{5,}" { fileinto "spammy"; }
if address :regex :domain "from" "^(lists\\.)?example\\.(com|org)$" { fileinto "example-${2}"; }
if header :regex :comparator "i;octet" "to" "BOB@" { fileinto "upper-bob"; }
if header :regex "to" "bob[+]([a-z]+)@" { fileinto "sub-${1}"; }
