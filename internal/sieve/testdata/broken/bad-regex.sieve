require "regex";
# a comment
if header :regex "subject" "(" { keep; }
