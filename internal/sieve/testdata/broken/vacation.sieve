require "vacation";
vacation "gone";
