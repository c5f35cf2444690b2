require "fileinto";
if exists ["from", "date"] { fileinto "has-from-date"; }
if exists ["from", "x-nope"] { fileinto "wrong"; }
if not exists "list-id" { fileinto "no-list"; }
if anyof (false, header :is "x-label" "work") { fileinto "work"; }
if allof (true, not true) { fileinto "never"; }
if header :contains ["subject", "from"] ["friday", "DIGEST"] { fileinto "subject-or-from"; }
if header :is "subject" "" { fileinto "empty-subject"; }
if header :matches "message-id" "<*@example.org>" { fileinto "mid"; }
if header :contains "x-label" "" { fileinto "label-empty-key"; }
elsif header :contains "subject" "" { fileinto "subject-empty-key"; }
else { fileinto "else"; }
