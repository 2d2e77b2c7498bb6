//! Post-build variable substitution (`${VAR}`, `${VAR:=default}`), as Flux's `postBuild` does
//! (being written).
