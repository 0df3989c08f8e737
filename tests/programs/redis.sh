# redis-server (linked with jemalloc) with io-threads under redis-benchmark,
# then a value set and read back: tests/programs.rs runs it natively and
# under the shim and compares.
set -e
port=$1
redis-server --port $port --save '' --appendonly no --dir "$PWD" --bind 127.0.0.1 --io-threads 2 >server.log 2>&1 &
for i in $(seq 100); do redis-cli -p $port ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-benchmark -p $port -n 20000 -c 4 -t set,get,lpush,lpop -q --csv >bench.csv
redis-cli -p $port set greeting hello >/dev/null
redis-cli -p $port get greeting
redis-cli -p $port dbsize
redis-cli -p $port shutdown nosave >/dev/null 2>&1 || true
wait
echo "redis: benchmark rows $(wc -l <bench.csv)"
