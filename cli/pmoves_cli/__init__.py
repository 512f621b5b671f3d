"""pmoves: a thin command over the pmoves.fleet playbooks; everything stays reachable with ansible-playbook."""

__version__ = "0.1.0"
