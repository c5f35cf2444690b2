require "fileinto";
if header :contains "subject" "Café" { fileinto "decoded-utf8"; }
if header :contains "subject" "Résumé" { fileinto "decoded-latin1"; }
if header :contains "from" "François" { fileinto "decoded-from"; }
if header :is "cc" "dave@example.com, \"Eve, the listener\" <eve@example.com>" { fileinto "unfolded"; }
if header :contains :comparator "i;octet" "subject" "CAFÉ" { fileinto "octet-upper"; }
if header :contains "subject" "CAFÉ" { fileinto "casemap-non-ascii"; }
if header :matches :comparator "i;octet" "subject" "Caf? meeting*" { fileinto "octet-question"; }
if header :matches "subject" "Caf? meeting*" { fileinto "casemap-question"; }
if header :matches "subject" "R?sum? du projet" { fileinto "latin1-question"; }
