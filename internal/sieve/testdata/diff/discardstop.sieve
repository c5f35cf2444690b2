require "fileinto";
if header :contains "x-spam-flag" "yes" { discard; stop; }
if header :contains "precedence" "bulk" { fileinto "Bulk"; discard; }
if header :contains "subject" "meeting" { keep; discard; }
stop;
fileinto "never";
