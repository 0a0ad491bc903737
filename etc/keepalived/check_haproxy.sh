#!/bin/sh
# keepalived's check of the local HAProxy (etc/keepalived/keepalived.conf): exits 0 when
# HAProxy answers its health URI (`monitor-uri` in etc/keepalived/haproxy.cfg) within a
# second. A dead or hung HAProxy fails it, and keepalived moves the virtual IP to the peer.
exec curl -fsS -m 1 -o /dev/null "${1:-http://127.0.0.1:8404/healthz}"
