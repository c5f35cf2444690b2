require ["encoded-character", "fileinto"];
if header :contains "subject" "${unicode:E9}" { fileinto "e-acute"; }
if header :contains "subject" "${hex:43 61 66}" { fileinto "Caf"; }
if header :contains "subject" "${unknown:41}" { fileinto "literal"; }
fileinto "${hex:41}${unicode: 263a }";
