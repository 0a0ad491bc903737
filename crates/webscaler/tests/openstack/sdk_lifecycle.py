"""openstacksdk (an independent client) driving the fake OpenStack of the test suite:
the fidelity check of tests/cloud_fake_sdk.rs.

Usage: python3 sdk_lifecycle.py AUTH_URL IMAGE NETWORK FLAVOR_ID USER_DATA_FILE

Connects with password auth (version discovery included), lists servers, looks the image
and the network up by name, creates a server, waits for ACTIVE, stops it (SHUTOFF), starts
it (ACTIVE), reads the limits, deletes it and waits until it is gone. Prints one JSON
object describing what it saw; any failure is an exception (non-zero exit).
"""

import base64
import json
import sys

import openstack


def main(auth_url, image_name, network_name, flavor_id, user_data_file):
    conn = openstack.connect(
        auth_url=auth_url,
        username="s171201",
        password="correct horse",
        project_name="admin",
        user_domain_name="Default",
        project_domain_id="default",
        region_name="RegionOne",
        interface="public",
        identity_api_version="3",
        load_yaml_config=False,
        load_envvars=False,
    )
    seen = {}
    seen["servers_before"] = sorted(s.name for s in conn.compute.servers())
    images = list(conn.image.images(name=image_name))
    networks = list(conn.network.networks(name=network_name))
    seen["image_ids"] = [i.id for i in images]
    seen["network_ids"] = [n.id for n in networks]
    with open(user_data_file, "rb") as f:
        user_data = base64.b64encode(f.read()).decode("ascii")
    server = conn.compute.create_server(
        name="node-1",
        image_id=images[0].id,
        flavor_id=flavor_id,
        networks=[{"uuid": networks[0].id}],
        user_data=user_data,
    )
    seen["created_id"] = server.id
    server = conn.compute.wait_for_server(server, status="ACTIVE", interval=0.2, wait=60)
    seen["after_create"] = server.status
    conn.compute.stop_server(server)
    server = conn.compute.wait_for_server(server, status="SHUTOFF", interval=0.2, wait=60)
    seen["after_stop"] = server.status
    conn.compute.start_server(server)
    server = conn.compute.wait_for_server(server, status="ACTIVE", interval=0.2, wait=60)
    seen["after_start"] = server.status
    seen["servers_during"] = sorted(s.name for s in conn.compute.servers())
    limits = conn.compute.get_limits()
    seen["max_total_instances"] = limits.absolute.instances
    seen["total_instances_used"] = limits.absolute.instances_used
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, interval=0.2, wait=60)
    seen["servers_after"] = sorted(s.name for s in conn.compute.servers())
    return seen


if __name__ == "__main__":
    json.dump(main(*sys.argv[1:6]), sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
