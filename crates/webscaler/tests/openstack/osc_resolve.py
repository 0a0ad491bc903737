"""What the real `openstack` CLI (python-openstackclient + osc-lib + openstacksdk) would
authenticate with, resolved offline: the oracle of tests/cloud_config_oracle.rs.

Usage: python3 osc_resolve.py [--os-* flags...]

It builds the CLI's shell exactly as `openstack` does (global options, OS_* defaults,
clouds.yaml + secure.yaml, OSC's auth hooks), then runs the step the CLI runs before its
first request: ClientManager.setup_auth(), which validates the auth options and loads the
keystoneauth plugin. Nothing is sent: no command is run and no token is asked for.

Prints one JSON object on stdout: the auth options handed to the plugin (secrets replaced
by "<redacted>"), auth_type, and the client manager's region_name, interface, verify
(false when --insecure or `verify: false`), cacert, cert, key. On an error
the CLI would report, prints {"error": "..."} and exits 0.
"""

import json
import sys

SECRETS = {"password", "application_credential_secret", "token", "secret"}


def main(argv):
    from openstackclient import shell as osc_shell

    app = osc_shell.OpenStackShell()
    # What osc-lib's and cliff's run() do before running a command.
    app.command_options = argv
    app.options, remainder = app.parser.parse_known_args(argv)
    app.configure_logging()
    app.initialize_app(remainder)
    cm = app.client_manager
    cm._auth_required = True
    cm.setup_auth()
    cfg = app.cloud.config
    auth = {}
    for k, v in cfg.get("auth", {}).items():
        if v is None or v == "":
            continue
        auth[k] = "<redacted>" if k in SECRETS else v
    # What the client manager hands to requests and keystoneauth: `verify` is False, True
    # or the CA bundle's path (cacert is used only when verifying).
    verify = cm.verify
    out = {
        "auth_type": cfg.get("auth_type"),
        "auth": auth,
        "region_name": cm.region_name or None,
        "interface": cm.interface,
        "verify": verify is not False,
        "cacert": verify if isinstance(verify, str) else cfg.get("cacert"),
        "cert": cfg.get("cert"),
        "key": cfg.get("key"),
        "plugin": type(cm.auth).__module__ + "." + type(cm.auth).__name__,
    }
    return out


if __name__ == "__main__":
    try:
        result = main(sys.argv[1:])
    except SystemExit:
        raise
    except Exception as e:  # the error the CLI would print
        result = {"error": "%s: %s" % (type(e).__name__, e)}
    json.dump(result, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
