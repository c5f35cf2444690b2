require ["fileinto", "variables", "relational", "comparator-i;ascii-numeric"];
# Where buzon follows RFC 5322 and Pigeonhole does not: see knownDifferences.
if address :count "eq" :comparator "i;ascii-numeric" "cc" "0" { fileinto "empty-cc"; }
if header :is "x-folded" "first  second	third" { fileinto "unfolded"; }
if header :matches "x-folded" "*" { fileinto "folded/${1}"; }
