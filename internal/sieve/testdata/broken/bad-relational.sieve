require "relational";

if header :value "gg" "a" "b" { keep; }
