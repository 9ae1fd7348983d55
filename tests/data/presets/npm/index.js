const ms = require("ms");
const isNumber = require("is-number");
const kleur = require("kleur");
console.log(ms("2 days"), isNumber(5), kleur.bold("ok").length > 0);
