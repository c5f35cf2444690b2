require ["fileinto", "body", "variables", "relational", "comparator-i;ascii-numeric", "envelope", "regex", "date", "index"];
if header :is "subject" "spaced out subject" { fileinto "trimmed"; }
if header :index 2 :is "subject" "a second subject" { fileinto "second-subject"; }
if header :count "eq" :comparator "i;ascii-numeric" "subject" "2" { fileinto "two-subjects"; }
if address :all :is "to" "bob@example.net" { fileinto "to-bob"; }
if address :all :is "to" "carol@example.com" { fileinto "to-carol"; }
if address :count "eq" :comparator "i;ascii-numeric" "to" "3" { fileinto "three-to"; }
if address :count "eq" :comparator "i;ascii-numeric" "reply-to" "2" { fileinto "group-members"; }
if address :localpart :is "from" "john.doe" { fileinto "john"; }
if header :is "x-empty" "" { fileinto "empty-value"; }
if exists "X-EMPTY" { fileinto "empty-exists"; }
if header :is :comparator "i;ascii-numeric" "x-count" "10" { fileinto "numeric-10"; }
if header :value "gt" :comparator "i;ascii-numeric" "x-count" "9" { fileinto "gt-9"; }
if body :text :contains "keyword" { fileinto "text-b64"; }
if body :content "text/html" :contains "html only" { fileinto "html"; }
if body :content "text/calendar" :contains "VCALENDAR" { fileinto "calendar"; }
if body :content "multipart" :contains "preamble" { fileinto "multipart-preamble"; }
if body :raw :contains "epilogue" { fileinto "raw-epilogue"; }
if body :text :contains "preamble" { fileinto "text-preamble"; }
if body :content "text/plain" :contains "é" { fileinto "text-eacute"; }
if date :originalzone :matches "date" "iso8601" "*" { fileinto "date/${1}"; }
if header :regex "from" "^\"doe, john\"" { fileinto "regex-casemap"; }
if envelope :all :is "to" "BOB@EXAMPLE.NET" { fileinto "env-casemap"; }
