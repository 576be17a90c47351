"""Apache httpd with mod_auth_mellon (Debian ``libapache2-mod-auth-mellon``) as a SAML 2.0
service provider: its own configuration directory and loopback port, started and
stopped by the test (no system service). Its key, certificate and metadata come from
``mellon_create_metadata``, the module's own tool; it trusts only the IdP metadata the
provider serves at /saml/metadata. The protected pages are a CGI script that prints the
signed-in user and the ``MELLON_*`` attributes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import requests

APACHE = shutil.which("apache2") or "/usr/sbin/apache2"
MODULES = Path("/usr/lib/apache2/modules")
SOAP = "urn:oasis:names:tc:SAML:2.0:bindings:SOAP"

_ECHO = """#!/bin/sh
printf 'Content-Type: text/plain; charset=utf-8\\r\\n\\r\\n'
echo "REMOTE_USER=$REMOTE_USER"
env | grep '^MELLON_' | sort
"""

_CONF = """
ServerRoot "{root}"
ServerName 127.0.0.1
PidFile "{root}/httpd.pid"
DefaultRuntimeDir "{root}"
Mutex file:{root} default
ErrorLog "{root}/error.log"
LogLevel warn auth_mellon:info
{user}
LoadModule mpm_prefork_module {mods}/mod_mpm_prefork.so
LoadModule authn_core_module {mods}/mod_authn_core.so
LoadModule authz_core_module {mods}/mod_authz_core.so
LoadModule authz_user_module {mods}/mod_authz_user.so
LoadModule alias_module {mods}/mod_alias.so
LoadModule cgi_module {mods}/mod_cgi.so
LoadModule setenvif_module {mods}/mod_setenvif.so
LoadModule auth_mellon_module {mods}/mod_auth_mellon.so
StartServers 2
MinSpareServers 1
MaxSpareServers 3
Listen 127.0.0.1:{port}
MellonCacheSize 200
MellonLockFile "{root}/mellon.lock"
# mellon marks its cookie-test cookie SameSite=None, which browsers refuse without
# Secure (this site is plain http); without the attribute it is Lax, and the IdP's POST
# back comes from the same host (another port), so it is sent.
SetEnvIf Request_URI "." MELLON_DISABLE_SAMESITE=1

<Directory />
  AllowOverride None
</Directory>
ScriptAlias /protected/ "{root}/cgi/"
<Directory "{root}/cgi">
  Options +ExecCGI
</Directory>
<Location />
  MellonEnable info
  MellonEndpointPath /mellon
  MellonSPMetadataFile "{root}/sp.xml"
  MellonSPPrivateKeyFile "{root}/sp.key"
  MellonSPCertFile "{root}/sp.cert"
  MellonIdPMetadataFile "{root}/idp.xml"
  MellonSecureCookie Off
  MellonVariable mellon-cookie
  MellonSignatureMethod rsa-sha256
</Location>
<Location /protected/>
  AuthType Mellon
  MellonEnable auth
  Require valid-user
</Location>
"""


class Mellon:
    def __init__(self, root: Path, *, port: int, idp_metadata: str):
        self.root, self.port = root, port
        self.base = f"http://127.0.0.1:{port}"
        self.entity_id = self.base + "/mellon/metadata"
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mellon_create_metadata", self.entity_id, self.base + "/mellon"],
                       cwd=root, check=True, capture_output=True)
        for ext, name in (("key", "sp.key"), ("cert", "sp.cert"), ("xml", "sp.xml")):
            (made,) = root.glob(f"http*.{ext}")  # named after the entity ID by the tool
            made.rename(root / name)
        # mellon answers SOAP LogoutRequests at its logout endpoint; its generated
        # metadata lists only the Redirect binding there, so the SOAP one is added.
        md = (root / "sp.xml").read_text()
        md = md.replace("<AssertionConsumerService",
                        f'<SingleLogoutService Binding="{SOAP}" '
                        f'Location="{self.base}/mellon/logout"/>\n    <AssertionConsumerService', 1)
        (root / "sp.xml").write_text(md)
        (root / "idp.xml").write_text(idp_metadata)
        (root / "cgi").mkdir(exist_ok=True)
        script = root / "cgi" / "page"
        script.write_text(_ECHO)
        script.chmod(0o755)
        user = ""
        if os.geteuid() == 0:  # Apache will not serve as root: its children run as nobody
            user = "User nobody\nGroup nogroup"
            # (test-only keys: the children must read them and the metadata)
            for p in (root, *root.iterdir(), *(root / "cgi").iterdir()):
                p.chmod(0o755 if p.is_dir() or p.name == "page" else 0o644)
        self.conf = root / "httpd.conf"
        self.conf.write_text(_CONF.format(root=root, mods=MODULES, port=port, user=user))
        self.proc: subprocess.Popen | None = None

    @property
    def metadata_file(self) -> Path:
        return self.root / "sp.xml"

    def start(self, timeout: float = 20) -> Mellon:
        check = subprocess.run([APACHE, "-t", "-f", str(self.conf)], capture_output=True,
                               text=True, check=False)
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen([APACHE, "-f", str(self.conf), "-DFOREGROUND"],
                                     start_new_session=True)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                requests.get(self.base + "/", timeout=1)
                return self
            except requests.ConnectionError:
                assert self.proc.poll() is None, self.log()[-4000:]
                time.sleep(0.1)
        raise AssertionError("Apache did not start:\n" + self.log()[-4000:])

    def log(self) -> str:
        path = self.root / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)  # the group this Popen started
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
