"""The solver families: registry name -> "module:class" of a `kinn.models.family.Family` subclass."""

FAMILIES = {
    "mlp": "kinn.solvers.mlp:MLPFamily",
    "kan": "kinn.solvers.kan:KANFamily",
    "fno": "kinn.solvers.fno:FNOFamily",
}
