require ["relational", "comparator-i;ascii-numeric", "fileinto"];
if header :count "ge" :comparator "i;ascii-numeric" "received" "2" { fileinto "hops-2"; }
if address :count "eq" :comparator "i;ascii-numeric" ["to", "cc"] "4" { fileinto "four-rcpts"; }
if header :count "eq" :comparator "i;ascii-numeric" "x-label" "3" { fileinto "three-labels"; }
if header :value "lt" :comparator "i;ascii-numeric" "x-priority" "3" { fileinto "priority"; }
if header :value "gt" "subject" "m" { fileinto "after-m"; }
if header :value "gt" :comparator "i;ascii-numeric" "x-spam-score" "5" { fileinto "score-over-5"; }
if header :count "eq" :comparator "i;ascii-numeric" "x-absent" "0" { fileinto "absent-0"; }
