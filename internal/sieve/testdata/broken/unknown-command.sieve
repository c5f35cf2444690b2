keep;
if true {
  frobnicate;
}
