require ["fileinto", "variables"];
set "text" text:
Hello
..dot
.
;
if string :contains "${text}" "Hello" { fileinto "has-hello"; }
if string :matches "${text}" "Hello*.dot*" { fileinto "dot-unstuffed"; }
if header :contains "subject" text: # a comment
Friday
.
{ fileinto "multiline-key"; }
