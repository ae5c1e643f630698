"""What a run reports: the summary page (`page`), the plots (`plots`) and Table 1 (`table1`).

Light on purpose: `mersemi train ablations` imports `table1` without the page or matplotlib.
"""
