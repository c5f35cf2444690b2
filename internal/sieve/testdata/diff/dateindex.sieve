require ["date", "index", "relational", "fileinto", "variables"];
if date :originalzone "date" "zone" "+0100" { fileinto "zone-plus-1"; }
if date :zone "+0000" "date" "date" "2026-11-24" { fileinto "utc-24"; }
if date :zone "+0000" "date" "hour" "08" { fileinto "utc-8h"; }
if date :zone "-0500" :value "ge" "date" "time" "12:00:00" { fileinto "afternoon-est"; }
if date :originalzone :matches "date" "std11" "*" { fileinto "std11/${1}"; }
if date :originalzone :matches "date" "iso8601" "*" { fileinto "iso/${1}"; }
if date :zone "+0000" :matches "date" "julian" "*" { fileinto "mjd-${1}"; }
if date :zone "+0000" :matches "date" "weekday" "*" { fileinto "wd-${1}"; }
if header :index 2 :is "x-label" "work" { fileinto "second-work"; }
if header :index 1 :last :is "x-label" "later" { fileinto "last-later"; }
if header :index 2 :last :matches "received" "*mx.example.org*" { fileinto "first-hop"; }
if address :index 1 :domain :is "to" "example.net" { fileinto "first-to"; }
