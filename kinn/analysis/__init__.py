"""Looking inside trained networks: KAN edge functions, importance and pruning (`edges`), closed-form
formulas read off a KAN's edges (`symbolic`), and empirical neural tangent kernels with their spectra
(`ntk`).

    from kinn.analysis import edges, symbolic, ntk
    edges.plot_edges(model, x, "edges.png")
    formula = symbolic.symbolic_formula(model, x, coords=("x", "y"))
    print(formula.outputs[0].text)
    K = ntk.ntk(model, ntk.solution, x)

The modules are imported on their own, so that `kinn.analysis.ntk` does not pull in sympy.
"""
