require ["variables", "fileinto", "relational", "comparator-i;ascii-numeric"];
set "name" "Alice";
set :lower "l" "${name}";
set :upper "u" "${name}";
set :upperfirst :lower "uf" "aLICE";
set :lowerfirst "lf" "ALICE";
set :length "len" "Résumé";
set :quotewildcard "q" "a*b?c\\d";
fileinto "v/${l}-${u}-${uf}-${lf}-${len}-${q}-${NAME}-${unset}-${}-${1}";
set "a" "x";
set "b" "${a}${a}";
set "c" "${b}${b}";
if string :is "${c}" "xxxx" { fileinto "strings"; }
if string :count "eq" :comparator "i;ascii-numeric" ["${a}", "", "${b}"] "2" { fileinto "count-2"; }
