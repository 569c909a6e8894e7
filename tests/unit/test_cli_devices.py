from daemon.cli import format_devices


def test_devices_table_says_why_a_device_cannot_be_used_for_hid_and_serial():
    rows = [
        {"kind": "hid", "path": "/dev/input/event3", "by_id": "/dev/input/by-id/usb-Scanner-event-kbd",
         "vendor_product": "0c2e:0b61", "name": "Honeywell Scanner", "looks_like_scanner": True,
         "can_open": True, "can_grab": False, "problem": "grabbed by another program"},
        {"kind": "serial", "device": "/dev/ttyACM0", "by_id": None, "vendor_product": None,
         "description": "Gryphon", "accessible": False, "reason": "no read/write access: add the user to 'dialout'"},
        {"kind": "serial", "device": "/dev/ttyUSB0", "description": "FTDI", "accessible": True, "reason": None},
    ]
    text = format_devices(rows)
    assert "usb-Scanner-event-kbd" in text and "[scanner?]" in text
    assert "access: grabbed by another program" in text
    assert "access: no read/write access: add the user to 'dialout'" in text
    assert text.count("access: ok") == 1


def test_no_devices_says_what_to_check():
    assert "'input' and 'dialout' groups" in format_devices([])
