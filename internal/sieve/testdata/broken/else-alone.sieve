if true {
  keep;
}
else {
  discard;
}
else { stop; }
