"""The checks behind ./quick-test.sh: does the shop work, and what is the mesh doing?

Standard library only, on purpose: learners run this with the system python3 against a cluster, with no virtualenv.
Every check ends PASS, FAIL or SKIP with a reason and the measured figures. The client retries what a user would
retry (a GET after a 5xx, a checkout with the same Idempotency-Key after a decline or a timeout) and counts those
retries, so the run passes with the seed's default faults on and still shows them.

Run it through ./quick-test.sh, which checks the prerequisites and, in cluster mode, opens (and closes) the
port-forwards this script is given as URLs.

Modules, one concern each:
  settings      names, ports, sample sizes, timeouts
  results       Check, PASS/FAIL/SKIP, the table
  client        HTTP and the shop's API as a user drives it
  shop_checks   health, catalog, cart, checkout, GET success (through the gateway)
  canary        the 95/5 split against a binomial band
  kube          cluster checks through kubectl: pods, authorization from a throwaway pod
  observe       mTLS and Prometheus targets
  runner        which checks run in which mode
"""
