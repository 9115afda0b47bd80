<?php
// SPDX-License-Identifier: MIT
// tls_client.php KIND URL COUNT: COUNT GET requests to URL over HTTPS,
// certificate unchecked, its own timeout 20 s: KIND "stream" with
// file_get_contents (a connection each), "curl" with one php-curl handle
// (one connection).  Prints one line per request: the status code, or
// "ERR <what>".
[$kind, $url, $count] = [$argv[1], $argv[2], (int)$argv[3]];
if ($kind === "stream") {
	$ctx = stream_context_create([
	    "ssl" => ["verify_peer" => false, "verify_peer_name" => false],
	    "http" => ["timeout" => 20, "ignore_errors" => true]]);
	for ($i = 0; $i < $count; $i++) {
		$body = @file_get_contents("$url?$i", false, $ctx);
		if ($body === false) {
			echo "ERR stream\n";
			break;
		}
		echo explode(" ", $http_response_header[0])[1], "\n";
	}
} else {
	$h = curl_init();
	curl_setopt_array($h, [CURLOPT_RETURNTRANSFER => true,
	    CURLOPT_SSL_VERIFYPEER => false, CURLOPT_SSL_VERIFYHOST => 0,
	    CURLOPT_TIMEOUT => 20]);
	for ($i = 0; $i < $count; $i++) {
		curl_setopt($h, CURLOPT_URL, "$url?$i");
		if (curl_exec($h) === false) {
			echo "ERR curl ", curl_errno($h), "\n";
			break;
		}
		echo curl_getinfo($h, CURLINFO_RESPONSE_CODE), "\n";
	}
}
