"""`smartsla audit`: findings and the report, the checks of an agreement's history against its code, terms and
reference model, the evidence checks, the replay on a fork, and the HTML report."""
