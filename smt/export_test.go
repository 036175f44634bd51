package smt

// TwoCores is twoCores for the package's external tests.
var TwoCores = twoCores
