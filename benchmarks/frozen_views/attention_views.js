(function(){
var me=document.currentScript;
var root=me&&me.parentNode&&me.parentNode.closest?me.parentNode.closest(".attention-view"):null;
if(!root)root=document.getElementById("__VIEW_ID__");
if(!root||root.getAttribute("data-live"))return;root.setAttribute("data-live","1");
var NS=root.querySelector("svg").namespaceURI;
var d=JSON.parse(root.querySelector("script.attention-data").textContent),n=d.n,G=d.geom;
function mk(t,a,p){var e=document.createElementNS(NS,t);for(var k in a)e.setAttribute(k,a[k]);
 if(p)p.appendChild(e);return e;}
function h(t,a,p,txt){var e=document.createElement(t);for(var k in a)e.setAttribute(k,a[k]);
 if(txt!==undefined)e.textContent=txt;if(p)p.appendChild(e);return e;}
function clear(e){while(e.firstChild)e.removeChild(e.firstChild);}
function col(k){return d.colors[k%d.colors.length];}
function panel(svg,get){
 var g=svg.querySelector("g.attention-lines"),cap=svg.querySelector(".attention-caption"),focus=null;
 function draw(){var s=get();clear(g);
  s.heads.forEach(function(k){var gh=mk("g",{stroke:col(k)},g),m=d.att[s.layer][k];
   for(var i=0;i<n;i++){if(focus&&focus.side==="q"&&focus.i!==i)continue;
    for(var j=0;j<n;j++){if(focus&&focus.side==="k"&&focus.i!==j)continue;var v=m[i*n+j];
     if(v<d.min)continue;mk("line",{
 x1:G.x1,y1:G.top+G.row*i,x2:G.x2,y2:G.top+G.row*j,"stroke-opacity":(v/d.scale).toFixed(3)},gh);
 }}});
  cap.textContent=s.caption;}
 svg.querySelectorAll(".attention-token").forEach(function(t){
  t.addEventListener("mouseenter",function(){focus={
 side:t.getAttribute("data-side"),i:+t.getAttribute("data-index")};draw();});
  t.addEventListener("mouseleave",function(){focus=null;draw();});});
 return draw;}
function layerSelect(box,value,onchange,extra){var sel=h("select",{},box);
 (extra||[]).forEach(function(o){h("option",{value:o[0]},sel,o[1]);});
 for(var l=0;l<d.layers;l++)h("option",{value:l},sel,"layer "+l);sel.value=value;
 sel.addEventListener("change",function(){onchange(sel.value);});return sel;}
var box=h("div",{"class":"attention-controls"});root.insertBefore(box,root.querySelector("svg"));
if(d.kind==="head"){var st={layer:d.layer,heads:d.heads.slice()};
 function heads(){return st.heads.slice().sort(function(a,b){return a-b;});}
 var draw=panel(root.querySelector("svg.attention-svg"),function(){return{
 layer:st.layer,heads:heads(),
  caption:"layer "+st.layer+", heads "+heads().join(" ")+
   "; lines for weights \u2265 "+d.min/d.scale+"; hover a token"};});
 h("span",{},box,"Layer ");layerSelect(box,st.layer,function(v){st.layer=+v;draw();});h("span",{
 },box," Heads ");
 for(var k=0;k<d.heads_total;k++)(function(k){var sw=h("span",{
 "class":"attention-swatch"+(st.heads.indexOf(k)<0?" off":""),
  title:"head "+k+" (click: toggle, double-click: only this head)",style:"background:"+col(k)},box,String(k));
  sw.addEventListener("click",function(){var p=st.heads.indexOf(k);if(p<0)st.heads.push(k);
 else st.heads.splice(p,1);sync();});
  sw.addEventListener("dblclick",function(){st.heads=[k];sync();});})(k);
 function sync(){box.querySelectorAll(".attention-swatch").forEach(function(sw,k){
 sw.className="attention-swatch"+(st.heads.indexOf(k)<0?" off":"");});draw();}
}
if(d.kind==="model"){var cur={layer:0,head:0};var detail=root.querySelector("svg.attention-detail");
 var draw=panel(detail,function(){return{
 layer:cur.layer,heads:[cur.head],caption:"layer "+cur.layer+", head "+cur.head+
  "; lines for weights \u2265 "+d.min/d.scale+"; hover a token"};});
 var mark=root.querySelector(".attention-mark");
 h("span",{},box,"Click a cell of the grid to show that head below.");
 root.querySelectorAll(".attention-cell").forEach(function(c){c.addEventListener("click",function(){
  cur={layer:+c.getAttribute("data-layer"),head:+c.getAttribute("data-head")};
  mark.setAttribute("x",c.getAttribute("x"));mark.setAttribute("y",c.getAttribute("y"));draw();});
 });
}
if(d.kind==="patch"){var ps={layer:d.layer,mode:"mean",query:d.rows[0]};
 var pv=root.querySelector("svg.attention-svg");
 var cap=pv.querySelector(".attention-caption"),rects=pv.querySelectorAll(".attention-patch");
 var ring=pv.querySelector(".attention-mark"),cap2=pv.querySelector(".attention-caption2");
 function vec(){var r=d.rows.indexOf(ps.query),out=[];for(var j=0;j<n;j++){var v=0;
  if(ps.mode==="rollout")v=d.rollout[ps.layer][r*n+j];else if(ps.mode==="mean"){for(var k=0;
 k<d.heads_total;k++)v+=d.att[ps.layer][k][r*n+j];v/=d.heads_total;}
  else v=d.att[ps.layer][+ps.mode][r*n+j];out.push(v);}return out;}
 function draw(){var v=vec(),mx=0;for(var j=1;j<n;j++)mx=Math.max(mx,v[j]);
  rects.forEach(function(r){var j=+r.getAttribute("data-index");
 r.setAttribute("fill-opacity",mx>0?(0.85*v[j]/mx).toFixed(3):"0");
   r.setAttribute("stroke",j===ps.query?"#00bfff":"none");});
  var what=ps.mode==="mean"?"mean of heads":ps.mode==="rollout"?"rollout":"head "+ps.mode;
  cap.textContent=d.tokens[ps.query]+" \u2192 patches, layer "+ps.layer+", "+what;
  cap2.textContent="to CLS "+(v[0]/d.scale).toFixed(3)+"; shading \u221d weight (max "+(mx/d.scale).toFixed(3)+")";
  ring.setAttribute("visibility",ps.query===0?"visible":"hidden");}
 h("span",{},box,"Layer ");layerSelect(box,ps.layer,function(v){ps.layer=+v;draw();});
 var ms=h("select",{},box);h("option",{value:"mean"},ms,"mean of heads");h("option",{
 value:"rollout"},ms,"rollout");
 for(var k=0;k<d.heads_total;k++)h("option",{value:k},ms,"head "+k);
 ms.addEventListener("change",function(){ps.mode=ms.value;draw();});
 var cb=h("button",{type:"button"},box,"query: [CLS]");cb.addEventListener("click",function(){
 ps.query=0;draw();});
 rects.forEach(function(r){r.addEventListener("click",function(){
 var j=+r.getAttribute("data-index");if(d.rows.indexOf(j)>=0){ps.query=j;draw();}});});
}
})();