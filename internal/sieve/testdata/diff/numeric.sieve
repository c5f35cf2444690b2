require ["comparator-i;ascii-numeric", "fileinto", "relational"];
if header :is :comparator "i;ascii-numeric" "x-spam-score" "12" { fileinto "is-12"; }
if header :is :comparator "i;ascii-numeric" "x-spam-score" "0012" { fileinto "is-0012"; }
if header :value "gt" :comparator "i;ascii-numeric" "subject" "99999" { fileinto "subject-infinite"; }
if header :is :comparator "i;ascii-numeric" "x-spam-score" "6" { fileinto "is-6"; }
