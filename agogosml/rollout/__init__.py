"""Blue/green rollouts of the app: deploy to the idle colour, gate, switch, watch, and
switch back by itself when the gate fails. Helm stays the source of truth: every change
is a `helm upgrade --reuse-values --set ...` of the release."""
