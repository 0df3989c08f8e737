# nginx, a master and two workers, under a local load of 1200 requests whose
# every answer is checked; tests/programs.rs runs it natively and under the
# shim and compares.
set -e
port=$1
dir=$PWD
# As root, the workers drop privileges to nobody, as in production.
user_line=''
[ "$(id -u)" = 0 ] && user_line='user nobody nogroup;'
mkdir -p tmp
cat > nginx.conf <<CONF
worker_processes 2;
$user_line
error_log $dir/error.log;
pid $dir/nginx.pid;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $dir/tmp;
    proxy_temp_path $dir/tmp;
    fastcgi_temp_path $dir/tmp;
    uwsgi_temp_path $dir/tmp;
    scgi_temp_path $dir/tmp;
    server { listen 127.0.0.1:$port; root $dir/www; }
}
CONF
nginx -c $dir/nginx.conf -g 'daemon off;' &
python3 - $port <<'PY'
import sys, time, threading, urllib.request
port = int(sys.argv[1])
url = f"http://127.0.0.1:{port}/index.html"
for _ in range(100):
    try:
        urllib.request.urlopen(url, timeout=2).read(); break
    except Exception:
        time.sleep(0.1)
bad = []
def load():
    for _ in range(300):
        body = urllib.request.urlopen(url, timeout=5).read()
        if body != b"holdcheck nginx page\n": bad.append(body)
ts = [threading.Thread(target=load) for _ in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
print(f"nginx: 1200 requests, {len(bad)} wrong")
PY
kill -QUIT $(cat nginx.pid)
wait
