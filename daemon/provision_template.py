"""The tagd.toml that `tagd provision` writes when there is none yet. Every key is documented, with its default, in
config/tagd.example.toml; this file holds what a reader needs and the common examples, commented out."""

CONFIG_TEMPLATE = """\
# tagd configuration, written by `tagd provision`. Running provision again updates only the [server] table's
# url, ca_file and token_file (keeping the previous file as tagd.toml.bak); everything else here is yours.
# Check the file with `tagd config`, the whole reader with `tagd doctor`; `systemctl reload tagd` applies changes.

[server]
url = {url}
# "": the service reads the device token from its credential (LoadCredential=tagd-token in the unit, from a file
# only root can read: `systemctl cat tagd` shows which).
token_file = {token_file}
ca_file = {ca_file}

[state]
# The roster cache and the check-in queue (outbox.db): never delete it while check-ins are waiting.
dir = {state_dir}

# ---- your scanner: `tagd devices` lists what is plugged in; uncomment and fill in one of these ------------------
# [[scanners]]
# type = "hid"
# name = "front-door"
# device = "/dev/input/by-id/usb-...-event-kbd"
# layout = "us"
#
# [[scanners]]
# type = "serial"
# name = "front-door"
# port = "/dev/serial/by-id/usb-...-if00"
# baudrate = 9600

# ---- the staff button and the lights (Raspberry Pi overlays: see docs/install-pi.md) ---------------------------
# [button]
# type = "evdev"
# name_pattern = "button@*"
# key = "KEY_PROG1"
#
# [[outputs]]
# type = "led"
# name = "green"
# role = "green"
#
# [[outputs]]
# type = "led"
# name = "red"
# role = "red"
"""
