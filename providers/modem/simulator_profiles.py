"""The modem simulator's vendor profiles: identity strings and quirks per stick.

The quirks are the ones docs/gsm.md lists under "Vendor quirks".
"""

from __future__ import annotations

from dataclasses import dataclass

# 27.005 memories as python-gsmmodem's generic and Huawei fakes list them: the same four for
# read/delete, write/send and receive.
STANDARD_CPMS_TEST = '+CPMS: ("ME","MT","SM","SR"),("ME","MT","SM","SR"),("ME","MT","SM","SR")'


@dataclass(frozen=True, slots=True)
class Profile:
    """How one family of modems answers. Every field defaults to the standard behaviour."""

    name: str
    manufacturer: str
    model: str
    # None: AT+CGMR answers ERROR (the Wavecom fake has no firmware string).
    revision: str | None
    imei: str = "356938035643809"
    imsi: str = "262019876543210"
    # The final code for a command the modem does not know.
    unknown_reply: str = "ERROR"
    # Wavecom ends +CPIN: READY with no OK.
    cpin_ok: bool = True
    # Wavecom answers +CME ERROR: 515 for this long after AT+CFUN=1.
    busy_after_cfun: float = 0.0
    # False: the radio is off after power-up, so init must send AT+CFUN=1.
    radio_on_at_boot: bool = True
    # "+CFUN: 1,0" on some modems (no vendor on record); we put it on Sierra.
    cfun_suffix: str = ""
    # Qualcomm M6280 / ZTE refuse everything, even ATZ and a bare AT, until the PIN is in.
    pin_gates_everything: bool = False
    # ZTE answers AT+CMGR with an empty <stat> (`+CMGR: ,,27`).
    cmgr_empty_stat: bool = False
    # ZTE SIM-busy on the first AT+CSCA? once the SIM is ready (python-gsmmodem's M6280 fake).
    csca_busy_once: bool = False
    # ZTE/Qualcomm forget the SMSC when AT+CSMP is written.
    csmp_clears_smsc: bool = False
    # Lines emitted between AT+CMGS=<n> and its `> ` prompt (ZTE +ZDONR/+ZPASR);
    # "{operator}" is replaced by the simulator's operator name.
    prompt_urcs: tuple[str, ...] = ()
    # URCs emitted every `urc_interval` seconds until AT^CURC=0 (Huawei ^RSSI/^MODE/^BOOT).
    periodic_urcs: tuple[str, ...] = ()
    urc_interval: float = 0.5
    # Vendor commands answered OK (gammu's HUAWEI_INIT / ZTE_INIT sequences); others get
    # `unknown_reply`, as on a modem of another make.
    vendor_commands: frozenset[str] = frozenset()
    cpms_test: str = STANDARD_CPMS_TEST
    # Wavecom takes only two memories in AT+CPMS=; a third one is refused.
    cpms_max_args: int = 3
    # Access technology reported in +CREG/+CEREG/+COPS: 0 GSM, 2 UTRAN, 7 E-UTRAN.
    access_tech: int = 2
    # A 2G module (SIMCom SIM800) does not know AT+CEREG.
    has_cereg: bool = True
    # LTE-only module (Sierra MC7455): +CREG stays 0 (no circuit-switched domain), only
    # +CEREG reports the registration (TS 27.007 §10.1.22).
    lte_only: bool = False


PROFILES: dict[str, Profile] = {
    profile.name: profile
    for profile in (
        Profile(name="generic", manufacturer="Shopbell", model="Modem Simulator", revision="1.0"),
        Profile(
            name="huawei",
            manufacturer="huawei",
            model="E1752",
            revision="11.126.13.00.00",
            unknown_reply="COMMAND NOT SUPPORT",
            periodic_urcs=("^RSSI:{rssi}", "^MODE:5,4", "^BOOT:20952463,0,0,0,72"),
            vendor_commands=frozenset({"^CURC", "^PORTSEL"}),
        ),
        Profile(
            name="zte",
            manufacturer="ZTE INCORPORATED",
            model="MF710M",
            revision="BD_MF710MV1.0.0B01",
            pin_gates_everything=True,
            cmgr_empty_stat=True,
            csca_busy_once=True,
            csmp_clears_smsc=True,
            prompt_urcs=('+ZDONR: "{operator}",262,99,"CS_PS","ROAM_OFF"', '+ZPASR: "UMTS"'),
            vendor_commands=frozenset({"+ZCDRUN", "+ZOPRT"}),
        ),
        Profile(
            # The leading spaces are what the Wavecom answers (python-gsmmodem's capture).
            name="wavecom",
            manufacturer=" WAVECOM MODEM",
            model=" MULTIBAND  900E  1800",
            revision=None,
            cpin_ok=False,
            busy_after_cfun=0.3,
            radio_on_at_boot=False,
            cpms_test='+CPMS: (("SM","BM","SR"),("SM"))',
            cpms_max_args=2,
            access_tech=0,
            has_cereg=False,
        ),
        Profile(
            name="sierra",
            manufacturer="Sierra Wireless, Incorporated",
            model="MC7455",
            revision="SWI9X30C_02.24.05.06",
            cfun_suffix=",0",
            access_tech=7,
            lte_only=True,
        ),
        Profile(
            name="quectel",
            manufacturer="Quectel",
            model="EC25",
            revision="EC25EFAR06A06M4G",
            access_tech=7,
        ),
        Profile(
            name="simcom",
            manufacturer="SIMCOM_Ltd",
            model="SIMCOM_SIM800L",
            revision="Revision:1418B04SIM800L24",
            access_tech=0,
            has_cereg=False,
        ),
    )
}
