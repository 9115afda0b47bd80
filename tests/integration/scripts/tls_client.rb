# SPDX-License-Identifier: MIT
# tls_client.rb URL COUNT: COUNT GET requests to URL over HTTPS on one
# Net::HTTP connection, certificate unchecked, its own timeouts 20 s.
# Prints one line per request: the status code, or "ERR <exception>".
require 'net/http'
require 'openssl'
uri = URI(ARGV[0])
count = ARGV[1].to_i
http = Net::HTTP.new(uri.host, uri.port)
http.use_ssl = true
http.verify_mode = OpenSSL::SSL::VERIFY_NONE
http.open_timeout = http.read_timeout = 20
http.max_retries = 0
$stdout.sync = true
begin
  http.start do |h|
    count.times { |i| puts h.get("#{uri.path}?#{i}").code }
  end
rescue StandardError => e
  puts "ERR #{e.class}"
end
