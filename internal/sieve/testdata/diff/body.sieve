require ["body", "fileinto"];
if body :contains "café" { fileinto "text-cafe"; }
if body :text :contains "unsubscribe" { fileinto "text-unsub"; }
if body :raw :contains "caf=E9" { fileinto "raw-qp"; }
if body :content "text/html" :contains "<p>" { fileinto "html"; }
if body :content "text/plain" :contains "could not be delivered" { fileinto "bounce-text"; }
if body :contains "swordfish" { fileinto "nested"; }
if body :content "application" :contains "JVBER" { fileinto "pdf"; }
if body :raw :matches "*Résumé*" { fileinto "raw-8bit"; }
if body :contains "Résumé" { fileinto "decoded-latin1"; }
