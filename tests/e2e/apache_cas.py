"""Apache httpd with mod_auth_cas (Debian ``libapache2-mod-auth-cas``) as a CAS-protected
site: its own configuration directory, loopback ports, started and stopped by the test
(no system service).

Two listeners: the protected site on plain http, and a TLS front for the provider's
``/cas/`` (mod_proxy), because mod_auth_cas validates tickets over https only — as a
provider in production sits behind TLS. The site's pages are a CGI script that prints
the signed-in user and the attributes mod_auth_cas passes on as ``CAS-*`` headers."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import requests

from tests.cas_helpers import self_signed

APACHE = shutil.which("apache2") or "/usr/sbin/apache2"
MODULES = Path("/usr/lib/apache2/modules")

_ECHO = """#!/bin/sh
printf 'Content-Type: text/plain; charset=utf-8\\r\\n\\r\\n'
echo "REMOTE_USER=$REMOTE_USER"
env | grep '^HTTP_CAS_' | sort
"""

_CONF = """
ServerRoot "{root}"
ServerName 127.0.0.1
PidFile "{root}/httpd.pid"
DefaultRuntimeDir "{root}"
Mutex file:{root} default
ErrorLog "{root}/error.log"
LogLevel warn auth_cas:debug
{user}
LoadModule mpm_prefork_module {mods}/mod_mpm_prefork.so
LoadModule authn_core_module {mods}/mod_authn_core.so
LoadModule authz_core_module {mods}/mod_authz_core.so
LoadModule authz_user_module {mods}/mod_authz_user.so
LoadModule alias_module {mods}/mod_alias.so
LoadModule cgi_module {mods}/mod_cgi.so
LoadModule ssl_module {mods}/mod_ssl.so
LoadModule proxy_module {mods}/mod_proxy.so
LoadModule proxy_http_module {mods}/mod_proxy_http.so
LoadModule socache_shmcb_module {mods}/mod_socache_shmcb.so
LoadModule auth_cas_module {mods}/mod_auth_cas.so
StartServers 2
MinSpareServers 1
MaxSpareServers 3

Listen 127.0.0.1:{port}
Listen 127.0.0.1:{tls_port}

<Directory />
  AllowOverride None
</Directory>

CASDebug On
CASVersion 2
CASLoginURL {idp}/cas/login
CASValidateURL https://127.0.0.1:{tls_port}/cas/p3/serviceValidate
CASCertificatePath {cert}
CASCookiePath {cookies}/
CASSSOEnabled On
CASAttributePrefix CAS-

<VirtualHost 127.0.0.1:{port}>
  # the service URLs mod_auth_cas sends: this address, whatever Host the browser sent
  CASRootProxiedAs http://127.0.0.1:{port}
  ScriptAlias /protected/ "{root}/cgi/"
  ScriptAlias /other/ "{root}/cgi/"
  ScriptAlias /level3/ "{root}/cgi/"
  <Directory "{root}/cgi">
    Options +ExecCGI
  </Directory>
  <Location /protected/>
    AuthType CAS
    CASAuthNHeader CAS-User
    Require valid-user
  </Location>
  <Location /other/>
    AuthType CAS
    CASAuthNHeader CAS-User
    Require valid-user
  </Location>
  <Location /level3/>
    AuthType CAS
    CASAuthNHeader CAS-User
    Require cas-attribute acr:L3
  </Location>
</VirtualHost>

<VirtualHost 127.0.0.1:{tls_port}>
  SSLEngine on
  SSLCertificateFile {cert}
  SSLCertificateKeyFile {key}
  ProxyPass /cas/ {idp}/cas/
</VirtualHost>
"""


class Apache:
    def __init__(self, root: Path, *, port: int, tls_port: int, idp_url: str):
        self.root, self.port, self.tls_port = root, port, tls_port
        self.base = f"http://127.0.0.1:{port}"
        root.mkdir(parents=True, exist_ok=True)
        cert, key = self_signed(root)
        (root / "cgi").mkdir(exist_ok=True)
        for name in ("index", "page"):
            script = root / "cgi" / name
            script.write_text(_ECHO)
            script.chmod(0o755)
        cookies = root / "cookies"
        cookies.mkdir(exist_ok=True)
        user = ""
        if os.geteuid() == 0:  # Apache will not serve as root: its children run as nobody
            user = "User nobody\nGroup nogroup"
            shutil.chown(cookies, "nobody", "nogroup")
            for p in (root, root / "cgi", *(root / "cgi").iterdir()):
                p.chmod(p.stat().st_mode | 0o755)
            key.chmod(0o644)
        self.conf = root / "httpd.conf"
        self.conf.write_text(_CONF.format(root=root, mods=MODULES, port=port,
                                          tls_port=tls_port, idp=idp_url, cert=cert,
                                          key=key, cookies=cookies, user=user))
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 20) -> Apache:
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

    def refusals(self) -> list[str]:
        """The failure codes mod_auth_cas logged from the provider's validation answers."""
        return re.findall(r"\[auth_cas:error\].*MOD_AUTH_CAS: ([A-Z_]+)$", self.log(),
                          flags=re.MULTILINE)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)  # the group this Popen started
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
