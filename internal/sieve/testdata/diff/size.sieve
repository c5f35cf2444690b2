require "fileinto";
if size :over 700 { fileinto "over-700"; }
if size :under 500 { fileinto "under-500"; }
if size :over 1K { fileinto "over-1k"; }
if not size :under 400 { fileinto "not-under-400"; }
