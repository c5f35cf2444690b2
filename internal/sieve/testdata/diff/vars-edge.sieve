require ["fileinto", "variables", "imap4flags", "copy", "relational", "comparator-i;ascii-numeric"];
set "a" "${undefined}x";
if header :matches "subject" "*" { set "s" "${0}"; }
if header :matches "subject" "no such thing *" { fileinto "never"; }
fileinto :copy "z/${a}/${1}";
set "n" "b";
fileinto :copy "n/${${n}}/${n";
fileinto :copy "c/${A}/${ a }/${10}/${0}";
if header :matches "to" "*@*" {
  if string :matches "${2}" "*.*" { fileinto :copy "d/${1}-${2}"; }
}
addflag "x y";
addflag "${a}";
removeflag "nope";
keep :flags "";
fileinto :flags ["\\Seen", "${a}"] "Flagged";
if hasflag :count "eq" :comparator "i;ascii-numeric" "3" { fileinto :copy "three-flags"; }
