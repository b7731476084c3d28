"""The problem catalogue: registry name -> "module:attribute" of a `kinn.Problem`.

Adding a problem is one small file in this folder plus one line here. Entries are strings so the catalogue
loads lazily: a problem file can `from kinn import ...` without a circular import.
"""

PROBLEMS = {
    "poisson1d_multiscale": "kinn.problems.poisson:poisson1d_multiscale",
    "poisson2d": "kinn.problems.poisson:poisson2d",
    "multiscale_fit": "kinn.problems.poisson:multiscale_fit",
    "heat_multiscale": "kinn.problems.heat:heat_multiscale",
    "helmholtz2d": "kinn.problems.helmholtz:helmholtz2d",
    "burgers1d": "kinn.problems.burgers:burgers1d",
    "plate_hole": "kinn.problems.plate_hole:plate_hole",
    "plate_hole_inverse": "kinn.problems.plate_hole:plate_hole_inverse",
    "neo_hookean_beam": "kinn.problems.neo_hookean_beam:neo_hookean_beam",
    "conductivity_inverse": "kinn.problems.conductivity:conductivity_inverse",
    "crack_mode3": "kinn.problems.crack:crack_mode3",
    "composite": "kinn.problems.composite:composite",
    "koch_snowflake": "kinn.problems.koch:koch_snowflake",
    "wedge": "kinn.problems.wedge:wedge",
    "flower": "kinn.problems.flower:flower",
    "darcy": "kinn.problems.darcy:darcy",
    "burgers_operator": "kinn.problems.burgers_operator:burgers_operator",
}
